import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast';

/**
 * The Dockerfile without Docker: its stages as dockerfile-ast parses them, and a replay of them in
 * folders of their own (COPY from the repository or an earlier stage, RUN in that folder), for the
 * image tests and for measuring the image's files (scripts/image-size.ts).
 */

/** The Dockerfile's stages, each with its base image and instructions. */
export async function dockerfileStages() {
  const dockerfile = DockerfileParser.parse(await readFile('Dockerfile', 'utf8'));
  return dockerfile.getFROMs().map((from, index, froms) => {
    const start = from.getRange().start.line;
    const end = froms[index + 1]?.getRange().start.line ?? Infinity;
    const instructions = dockerfile.getInstructions().filter((i) => i.getRange().start.line > start && i.getRange().start.line < end);
    return { name: from.getBuildStage() ?? String(index), image: `${from.getImageName()}:${from.getImageTag()}`, digest: from.getImageDigest(), instructions };
  });
}
export type Stage = Awaited<ReturnType<typeof dockerfileStages>>[number];

export const keyword = (stage: Stage, name: string) => stage.instructions.filter((i) => i.getKeyword() === name);
export const args = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());
export const fromStage = (instruction: Instruction) => (instruction as Copy).getFromFlag?.()?.getValue();

/** A COPY --from of a file of that stage's base image, which the replay does not have. */
export interface BaseImageCopy {
  readonly from: string;
  readonly source: string;
  readonly target: string;
}

export interface Replay {
  readonly stages: Stage[];
  /** Each stage's folder. */
  readonly built: Map<string, string>;
  readonly fromBase: BaseImageCopy[];
}

/**
 * Replays every stage under `root` with the given build arguments, and returns each stage's folder.
 * The full (development) install is the repository's own node_modules, linked; the production one
 * is run again, offline from npm's cache.
 */
export async function replayStages(root: string, buildArgs: Readonly<Record<string, string>>): Promise<Replay> {
  const stages = await dockerfileStages();
  const built = new Map<string, string>();
  const fromBase: BaseImageCopy[] = [];
  for (const stage of stages) {
    const dir = path.join(root, stage.name);
    await mkdir(dir, { recursive: true });
    const inStage = (from: string, p: string) => (p.startsWith('/app') ? path.join(from, p.slice('/app'.length)) : path.join(from, p));
    for (const instruction of stage.instructions) {
      const word = instruction.getKeyword();
      if (word === 'COPY') {
        const [...sources] = args(instruction);
        const written = sources.pop()!;
        const target = inStage(dir, written);
        const from = fromStage(instruction);
        for (const source of sources) {
          // Outside /app, an earlier stage holds only its base image's files (the node binary): not replayed, the caller is told.
          if (from && !source.startsWith('/app')) {
            fromBase.push({ from, source, target: written });
            continue;
          }
          const origin = from ? inStage(built.get(from)!, source) : source;
          const destination = target.endsWith('/') ? path.join(target, path.basename(source)) : target;
          await mkdir(path.dirname(destination), { recursive: true });
          // Moving node_modules is a copy that costs nothing.
          if (from && source.endsWith('node_modules')) await rename(origin, destination);
          else await cp(origin, destination, { recursive: true });
        }
      } else if (word === 'RUN') {
        const script = instruction.getArgumentsContent()!;
        if (script.startsWith('npm ci') && !script.includes('--omit=dev')) {
          await symlink(path.resolve('node_modules'), path.join(dir, 'node_modules'));
          continue;
        }
        const offline = script.replace(/npm ci /g, 'npm ci --prefer-offline ').replace('npm cache clean --force', 'true');
        await promisify(execFile)('sh', ['-c', offline], { cwd: dir, env: { ...process.env, ...buildArgs, NODE_ENV: '' } });
      }
    }
    built.set(stage.name, dir);
  }
  return { stages, built, fromBase };
}
