// Every workflow the worker registers. One file per runbook.
export { backup } from './backup';
