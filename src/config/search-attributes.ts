import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes every runbook run carries, so the Web UI and `runbook list` filter by them
 * (e.g. `RunbookName = "restore" AND Environment = "production"`). No Node built-ins here: workflows
 * import this file too (to upsert RunbookStatus). `runbook setup` registers them on a real cluster; the
 * dev server gets them as `--search-attribute` flags.
 */
export const RUNBOOK_NAME = defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD);
export const RUNBOOK_TARGET = defineSearchAttributeKey('RunbookTarget', SearchAttributeType.KEYWORD);
/** `production` or `non-production`, from the target's `production:` flag in the config. */
export const ENVIRONMENT = defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD);
/** Who or what started the run: `cli:<user>`, `schedule:<id>`, `chatops:<user>`, ... */
export const TRIGGERED_BY = defineSearchAttributeKey('TriggeredBy', SearchAttributeType.KEYWORD);
/** The step the run is in, then how it ended (`completed`, `failed`); upserted by the workflow as it goes. */
export const RUNBOOK_STATUS = defineSearchAttributeKey('RunbookStatus', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [RUNBOOK_NAME, RUNBOOK_TARGET, ENVIRONMENT, TRIGGERED_BY, RUNBOOK_STATUS];
