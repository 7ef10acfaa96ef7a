// A secret as one SSM Parameter Store SecureString (`gitlab.rotatedToken.ssmParameter`): encrypted with KMS
// (the account's aws/ssm key, or `kmsKeyId`), readable by the task role on every start of a replaced task.
//
//   get     GetParameter WithDecryption        ParameterNotFound → nothing stored yet
//   put     PutParameter SecureString, Overwrite, Standard tier (4 KB: the value is ~200 bytes)
//   delete  DeleteParameter                    ParameterNotFound → success
//
// The SDK client retries throttling (adaptive mode, providers/aws/clients.ts); a caller that must not lose
// the value (a rotated token: the old one no longer works) retries a failed put itself.

import {
  DeleteParameterCommand,
  GetParameterCommand,
  ParameterNotFound,
  PutParameterCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import type { SecretStore } from '../../core/secret-store.js';

export interface SsmSecretStoreOptions {
  client: SSMClient;
  name: string;
  /** KMS key id, alias or ARN; default: the account's AWS-managed aws/ssm key. */
  kmsKeyId?: string;
  /** Shown in the console beside the parameter. */
  description?: string;
}

function notFound(e: unknown): boolean {
  return e instanceof ParameterNotFound || (e as { name?: string }).name === 'ParameterNotFound';
}

export class SsmSecretStore implements SecretStore {
  readonly where: string;

  constructor(private readonly o: SsmSecretStoreOptions) {
    this.where = `ssm:${o.name}`;
  }

  async get(): Promise<string | undefined> {
    try {
      const out = await this.o.client.send(new GetParameterCommand({ Name: this.o.name, WithDecryption: true }));
      return out.Parameter?.Value;
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async put(value: string): Promise<void> {
    await this.o.client.send(
      new PutParameterCommand({
        Name: this.o.name,
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
        Tier: 'Standard',
        ...(this.o.kmsKeyId !== undefined && { KeyId: this.o.kmsKeyId }),
        ...(this.o.description !== undefined && { Description: this.o.description }),
      }),
    );
  }

  async delete(): Promise<void> {
    try {
      await this.o.client.send(new DeleteParameterCommand({ Name: this.o.name }));
    } catch (e) {
      if (!notFound(e)) throw e;
    }
  }
}
