export * from './common.ts';
export * from './backupRequest.ts';
export * from './restoreRequest.ts';
export * from './backupSchedule.ts';
export * from './parse.ts';
