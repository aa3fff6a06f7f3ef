#!/usr/bin/env node
// Verifies a delivery receipt offline, with nothing but Node.js (no dependencies):
//   node scripts/verify-receipt.mjs <receipt.json> <keys.json | https://…/.well-known/delivery-receipt-keys.json>
// Checks the Ed25519 signature with the published key named in the receipt, and that the entries
// form an unbroken hash chain ending at the receipt's chain head. Exit code 0 when valid, 1 when not.
import { createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** The same canonical JSON the log service signs: keys sorted, undefined dropped, no spaces. */
function canonicalJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

async function load(source) {
  if (/^https?:\/\//.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`${source}: HTTP ${res.status}`);
    return res.json();
  }
  return JSON.parse(await readFile(source, 'utf8'));
}

export function verifyReceipt(receipt, jwks) {
  const problems = [];
  const { keyId, signature, ...body } = receipt;
  const jwk = (jwks.keys ?? []).find((k) => k.kid === keyId);
  if (!jwk) problems.push(`no published key "${keyId}"`);
  else if (!verify(null, Buffer.from(canonicalJson(body)), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signature ?? '', 'base64'))) {
    problems.push('the signature does not match the receipt (altered, or signed by another key)');
  }
  const entries = [...(receipt.entries ?? [])].sort((a, b) => a.seq - b.seq);
  let prev = '';
  entries.forEach((entry, i) => {
    if (entry.seq !== i + 1) problems.push(`entry ${i + 1} is missing (found ${entry.seq})`);
    if (entry.prevHash !== prev) problems.push(`entry ${entry.seq} does not link to the entry before it`);
    prev = entry.hash;
  });
  if (receipt.chain?.head !== prev) problems.push('the chain head is not the last entry’s hash');
  if (receipt.chain?.records !== entries.length) problems.push('the record count does not match the entries');
  return problems;
}

async function main() {
  const [receiptPath, keysSource] = process.argv.slice(2);
  if (!receiptPath || !keysSource) {
    console.error('usage: node scripts/verify-receipt.mjs <receipt.json> <keys.json | URL of delivery-receipt-keys.json>');
    process.exit(2);
  }
  const receipt = await load(receiptPath);
  const problems = verifyReceipt(receipt, await load(keysSource));
  console.log(`lead ${receipt.leadId} (source ${receipt.sourceId}), status ${receipt.status ?? '?'}${receipt.buyerId ? ` to ${receipt.buyerId}` : ''}`);
  console.log(`issued ${new Date(receipt.issuedAt).toISOString()}, key ${receipt.keyId}, ${receipt.chain?.records} entries, chain head ${receipt.chain?.head}`);
  for (const entry of receipt.entries ?? []) {
    if (!entry.attempt) continue;
    const a = entry.attempt;
    console.log(`  attempt ${a.attempt} at ${a.endpointId} (buyer ${a.buyerId}): ${a.outcome} ${a.code}${a.status !== undefined ? ` HTTP ${a.status}` : ''}, ${new Date(a.startedAt).toISOString()} → ${new Date(a.finishedAt).toISOString()} (${a.finishedAt - a.startedAt} ms)`);
  }
  if (problems.length) {
    console.log(`INVALID:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('VALID: the signature and the hash chain check out.');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(2);
  });
}
