// Validates an AsyncAPI document with the official parser: node validate.mjs FILE (exit 1 when invalid).
import { Parser, fromFile } from '@asyncapi/parser';
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, process.argv[2]).parse();
const errors = diagnostics.filter(d => d.severity === 0);
for (const d of diagnostics.filter(d => d.severity <= 1)) console.log(d.severity === 0 ? 'ERROR' : 'WARN', d.code, d.message, JSON.stringify(d.path));
if (!document || errors.length) { console.log('INVALID'); process.exit(1); }
console.log('VALID', document.channels().length, 'channels', document.messages().length, 'messages');
