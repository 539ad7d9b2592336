/** Types for scripts/build.mjs (imported by the benchmark). */
export function build(options?: { srcDir?: string; outDir?: string }): Promise<{ files: number; ms: number }>;
