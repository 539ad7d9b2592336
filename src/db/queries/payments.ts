import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../client.js';
import { payments, type SelectPayment } from '../schema/payments.js';

export async function getPayment(db: DbOrTx, provider: string, providerPaymentId: string): Promise<SelectPayment | undefined> {
  const rows = await db
    .select()
    .from(payments)
    .where(and(eq(payments.provider, provider), eq(payments.providerPaymentId, providerPaymentId)))
    .limit(1);
  return rows[0];
}

export interface ListPaymentsParams {
  provider?: string;
  status?: string;
  limit: number;
  /** Exclusive upper bound on the row id: pages run newest first and stay stable under inserts. */
  beforeId?: number;
}

export async function listPayments(db: DbOrTx, params: ListPaymentsParams): Promise<SelectPayment[]> {
  const filters: SQL[] = [];
  if (params.provider) filters.push(eq(payments.provider, params.provider));
  if (params.status) filters.push(eq(payments.status, params.status));
  if (params.beforeId !== undefined) filters.push(lt(payments.id, params.beforeId));
  return db
    .select()
    .from(payments)
    .where(filters.length > 0 ? and(...filters) : undefined)
    .orderBy(desc(payments.id))
    .limit(params.limit);
}
