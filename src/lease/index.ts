export { Lessor, type LessorOptions } from './lessor.js';
export { leaseKeyUpdates } from './key-updates.js';
export { expireAsRevokes } from './expire.js';
