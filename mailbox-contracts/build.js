#!/usr/bin/env node
// Compiles every contract in src/ with the solc version pinned in package-lock.json and
// writes out/<Name>.json = {abi, bytecode, deployedBytecode}. Deterministic: the same
// sources give byte-identical artifacts.
//
//   node build.js           write out/
//   node build.js --check   compile in memory; exit 1 naming every artifact that differs,
//                           is missing, or is stale (in out/ but no longer produced)
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = __dirname;
const SRC = path.join(ROOT, 'src');
const OUT = path.join(ROOT, 'out');
const SOLC_VERSION = '0.8.37';

// Pinned compiler settings. Changing any of these changes every artifact.
const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 20000 },
  viaIR: true,
  metadata: { appendCBOR: false },
  outputSelection: {
    '*': {
      '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'],
    },
  },
};

// Folders whose files hold only interfaces and libraries: no artifacts.
const NO_ARTIFACTS = new Set(['interfaces', 'libs']);

// Contracts that serve some functions from their fallback (to shorten solc's linear
// selector dispatch for their hot functions): the artifact's ABI lists those functions,
// taken from the named interface, instead of the fallback. See IMailboxFallback.
const FALLBACK_ABI = { Mailbox: 'IMailboxFallback' };

// Contracts that serve functions under another name with the same selector (a name searched
// for its selector, so that solc's dispatcher reaches the function without decoding its
// arguments): the artifact's ABI lists the named interface's functions instead of those
// functions, matched by selector (each interface function must find exactly one). See
// IMailboxProcess.
const RENAMED_ABI = { Mailbox: 'IMailboxProcess' };

// solc's ABI order: by kind, then by name (stable for overloads).
const KIND_ORDER = ['constructor', 'error', 'event', 'fallback', 'function', 'receive'];
function sortAbi(abi) {
  return abi
    .map((entry, i) => ({ entry, i }))
    .sort((a, b) => {
      const ka = KIND_ORDER.indexOf(a.entry.type);
      const kb = KIND_ORDER.indexOf(b.entry.type);
      if (ka !== kb) return ka - kb;
      const na = a.entry.name || '';
      const nb = b.entry.name || '';
      if (na !== nb) return na < nb ? -1 : 1;
      return a.i - b.i;
    })
    .map(({ entry }) => entry);
}

function renamedAbi(file, name, contracts) {
  const c = contracts[name];
  const iface = RENAMED_ABI[name];
  if (!iface) return c.abi;
  if (!contracts[iface]) throw new Error(`${name}: interface ${iface} not found in ${file}`);
  const own = c.evm.methodIdentifiers;
  const drop = new Set();
  for (const [signature, selector] of Object.entries(contracts[iface].evm.methodIdentifiers)) {
    const serving = Object.keys(own).filter((s) => own[s] === selector);
    if (serving.length !== 1) {
      throw new Error(`${name}: no function with the selector of ${iface}.${signature}`);
    }
    drop.add(serving[0].slice(0, serving[0].indexOf('(')));
  }
  const kept = c.abi.filter((e) => !(e.type === 'function' && drop.has(e.name)));
  return sortAbi([...kept, ...contracts[iface].abi]);
}

function abiOf(file, name, contracts) {
  const abi = renamedAbi(file, name, contracts);
  const extra = FALLBACK_ABI[name];
  if (!extra) return abi;
  if (!contracts[extra]) throw new Error(`${name}: interface ${extra} not found in ${file}`);
  const served = contracts[extra].abi;
  const names = new Set(served.map((e) => e.name));
  const own = abi.filter((e) => e.type !== 'fallback');
  for (const e of own) {
    if (e.type === 'function' && names.has(e.name)) {
      throw new Error(`${name}.${e.name} is both a function and served by the fallback`);
    }
  }
  return sortAbi([...own, ...served]);
}

function listSources(dir, prefix = '') {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listSources(path.join(dir, entry.name), rel));
    else if (entry.name.endsWith('.sol')) out.push(rel);
  }
  return out;
}

function compile() {
  if (!solc.version().startsWith(`${SOLC_VERSION}+`)) {
    throw new Error(`solc ${solc.version()} found, ${SOLC_VERSION} pinned: run npm ci`);
  }
  const sources = {};
  for (const rel of listSources(SRC)) {
    sources[rel] = { content: fs.readFileSync(path.join(SRC, rel), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length > 0) throw new Error(`${errors.length} compile error(s)`);

  const artifacts = new Map();
  for (const file of Object.keys(output.contracts).sort()) {
    if (NO_ARTIFACTS.has(file.split('/')[0])) continue;
    for (const name of Object.keys(output.contracts[file]).sort()) {
      const c = output.contracts[file][name];
      if (!c.evm.bytecode.object) continue; // abstract
      if (artifacts.has(name)) throw new Error(`two contracts named ${name}`);
      const artifact = {
        abi: abiOf(file, name, output.contracts[file]),
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
      artifacts.set(`${name}.json`, `${JSON.stringify(artifact, null, 2)}\n`);
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes('--check');
  const artifacts = compile();
  const existing = fs.existsSync(OUT)
    ? fs.readdirSync(OUT).filter((f) => f.endsWith('.json')).sort()
    : [];
  if (check) {
    const problems = [];
    for (const [file, text] of artifacts) {
      const p = path.join(OUT, file);
      if (!fs.existsSync(p)) problems.push(`missing: out/${file}`);
      else if (fs.readFileSync(p, 'utf8') !== text) problems.push(`differs: out/${file}`);
    }
    for (const file of existing) {
      if (!artifacts.has(file)) problems.push(`stale: out/${file}`);
    }
    if (problems.length > 0) {
      for (const p of problems) console.error(p);
      console.error('artifacts are out of date: run `node build.js` and commit out/');
      process.exit(1);
    }
    console.log(`${artifacts.size} artifacts up to date`);
    return;
  }
  fs.mkdirSync(OUT, { recursive: true });
  for (const file of existing) {
    if (!artifacts.has(file)) fs.unlinkSync(path.join(OUT, file));
  }
  for (const [file, text] of artifacts) fs.writeFileSync(path.join(OUT, file), text);
  console.log(`wrote ${artifacts.size} artifacts to out/`);
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
