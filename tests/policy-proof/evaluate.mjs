// Evaluates IAM requests with @cloud-copilot/iam-simulate: reads a JSON array of
// {principal, action, resource, account, context, identity, resourcePolicy} from the file
// named on the command line and prints [result, allowingStatementSids] for each, in order.
import { readFileSync } from 'node:fs';
import { runSimulation } from '@cloud-copilot/iam-simulate';

const requests = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const answers = [];
for (const r of requests) {
  const out = await runSimulation({
    request: {
      principal: r.principal,
      action: r.action,
      resource: { resource: r.resource, accountId: r.account },
      contextVariables: r.context,
    },
    identityPolicies: r.identity,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: r.resourcePolicy ?? undefined,
  }, {});
  if (out.errors) {
    answers.push([`error: ${JSON.stringify(out.errors)}`, []]);
    continue;
  }
  const analysis = out.result?.analysis;
  const sids = (analysis?.identityAnalysis?.allowStatements ?? []).map((s) => s.statement?.Sid ?? '');
  answers.push([out.overallResult ?? analysis?.result, sids]);
}
process.stdout.write(JSON.stringify(answers));
