// `npm run build`: compile src/ to dist/ (scripts/lib/dist.ts), always, from scratch.
//
// Usage: npm run build   (node --import tsx scripts/build.ts)
import { buildDist } from './lib/dist.ts';

try {
  buildDist((l) => process.stdout.write(`build: ${l}\n`));
} catch (e) {
  process.stderr.write(`build failed: ${(e as Error).message}\n`);
  process.exit(1);
}
