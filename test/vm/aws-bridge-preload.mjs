// Loaded into the built CLI by the VM test (`node --import <this file> bin/fleetrunner.js run …`): every
// `send` of the AWS SDK's EC2, SSM and ECR clients goes to the test's bridge (test/vm/aws-bridge.ts), which
// runs the command on the fake EC2 and the mocked ECR of the test process. Outputs and AWS errors come back
// as the SDK would give them (errors as the service's own exception class), so the CLI's code above the SDK
// runs unchanged. Without FLEETRUNNER_TEST_AWS_BRIDGE the process refuses to start.
import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { ECRClient, ECRServiceException } from '@aws-sdk/client-ecr';
import { SSMClient, SSMServiceException } from '@aws-sdk/client-ssm';

const url = process.env.FLEETRUNNER_TEST_AWS_BRIDGE;
const token = process.env.FLEETRUNNER_TEST_AWS_BRIDGE_TOKEN;
if (!url || !token) throw new Error('aws-bridge-preload: FLEETRUNNER_TEST_AWS_BRIDGE and FLEETRUNNER_TEST_AWS_BRIDGE_TOKEN must be set');

const revive = (_key, value) => (value && typeof value === 'object' && typeof value.$date === 'string' ? new Date(value.$date) : value);

function forward(service, Exception) {
  return function send(command, ...rest) {
    const callback = typeof rest.at(-1) === 'function' ? rest.at(-1) : undefined;
    const result = (async () => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ service, command: command.constructor.name, input: command.input }),
      });
      const body = JSON.parse(await res.text(), revive);
      if (body.bridgeError) throw new Error(`aws-bridge: ${body.bridgeError}`);
      if (body.error) throw new Exception(body.error);
      return { $metadata: { httpStatusCode: 200 }, ...body.output };
    })();
    if (!callback) return result;
    result.then((r) => callback(null, r), (e) => callback(e));
    return undefined;
  };
}

EC2Client.prototype.send = forward('ec2', EC2ServiceException);
SSMClient.prototype.send = forward('ssm', SSMServiceException);
ECRClient.prototype.send = forward('ecr', ECRServiceException);
