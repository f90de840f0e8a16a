// Checks email HTML against the caniemail data (@jsx-email/doiuse-email, from npm: see
// package.json), for tests/integration/test_email_clients.py.
//
// Reads {"clients": ["gmail.*", ...], "documents": [{"name": ..., "html": ...}, ...]} as JSON
// on standard input; writes [{"name", "errors", "warnings"}, ...] as JSON on standard output.
// Which errors are acceptable is the Python test's decision, not this script's.
import { doIUseEmail } from '@jsx-email/doiuse-email';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
const { clients, documents } = JSON.parse(input);
const results = documents.map(({ name, html }) => {
  const result = doIUseEmail(html, { emailClients: clients });
  return { name, errors: result.success ? [] : result.errors, warnings: result.warnings };
});
process.stdout.write(JSON.stringify(results));
