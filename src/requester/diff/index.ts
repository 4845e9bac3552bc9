/** Dispute diagnosis: compare two artifact trees by CID, explain differing files with diffoscope. */
export { diffTrees } from './diff-trees.ts'
export type { DiffTreesOptions, DiffTreesResult, NodeKind, TreeChange, TreeDiffEntry } from './diff-trees.ts'
export { DEFAULT_DIFFOSCOPE_TIMEOUT_MS, DIFFOSCOPE_HINT, diffoscopeReport, findExecutable } from './diffoscope.ts'
export type { DiffoscopeOptions, DiffoscopeResult } from './diffoscope.ts'
export { diagnoseDispute } from './diagnose-dispute.ts'
export type { DiagnoseOptions, DisputeFileReport, DisputeReport } from './diagnose-dispute.ts'
export * from './errors.ts'
