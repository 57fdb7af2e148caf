export { WatchHub, type WatchHubOptions } from './hub.js';
export { WatcherGroup, type GroupMember } from './watcher-group.js';
export * from './types.js';
export { mergeHistory } from './merge-history.js';
