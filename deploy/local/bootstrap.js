#!/usr/bin/env node
// `npm start` entry: installs dependencies on a fresh clone (npm ci), then runs the TypeScript
// orchestrator (deploy/local/start.ts). Plain JavaScript so it runs before anything is installed.
'use strict';
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
if (!fs.existsSync(path.join(root, 'node_modules', 'tsx'))) {
  console.log('First start: installing dependencies (npm ci)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(__dirname, 'start.ts')], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
