import type { DeliveryRecord, EventRecord, PaymentHistory, ReceiptRecord, TransitionRecord } from './queries.js';

/** One line of a payment's timeline; merged from four tables into one chronological list. */
export type TimelineEntry =
  | { kind: 'receipt'; at: Date; receipt: ReceiptRecord }
  | { kind: 'transition'; at: Date; transition: TransitionRecord; cause: ReceiptRecord | null }
  | { kind: 'event'; at: Date; event: EventRecord; deliveries: DeliveryRecord[] }
  | { kind: 'delivery'; at: Date; delivery: DeliveryRecord; event: EventRecord | null };

// Within one instant, causes come before effects.
const KIND_ORDER: Record<TimelineEntry['kind'], number> = { receipt: 0, transition: 1, event: 2, delivery: 3 };

function entryId(entry: TimelineEntry): number {
  switch (entry.kind) {
    case 'receipt':
      return entry.receipt.id;
    case 'transition':
      return entry.transition.id;
    case 'event':
      return entry.event.id;
    case 'delivery':
      return entry.delivery.id;
    default: {
      const unreachable: never = entry;
      return unreachable;
    }
  }
}

/** When a delivery last did something: delivered, gave up, tried, or (never tried) was queued. */
export function deliveryMoment(delivery: DeliveryRecord): Date {
  return delivery.deliveredAt ?? delivery.deadLetteredAt ?? delivery.lastAttemptAt ?? delivery.createdAt;
}

export function buildTimeline(history: PaymentHistory): TimelineEntry[] {
  const receiptsById = new Map(history.receipts.map((receipt) => [receipt.id, receipt]));
  const eventsByOutboxId = new Map(history.events.map((event) => [event.id, event]));
  const deliveriesByOutboxId = new Map<number, DeliveryRecord[]>();
  for (const delivery of history.deliveries) {
    const list = deliveriesByOutboxId.get(delivery.outboxId) ?? [];
    list.push(delivery);
    deliveriesByOutboxId.set(delivery.outboxId, list);
  }
  const entries: TimelineEntry[] = [
    ...history.receipts.map((receipt): TimelineEntry => ({ kind: 'receipt', at: receipt.receivedAt, receipt })),
    ...history.transitions.map(
      (transition): TimelineEntry => ({
        kind: 'transition',
        at: transition.createdAt,
        transition,
        cause: transition.receiptId === null ? null : (receiptsById.get(transition.receiptId) ?? null),
      }),
    ),
    ...history.events.map((event): TimelineEntry => ({ kind: 'event', at: event.createdAt, event, deliveries: deliveriesByOutboxId.get(event.id) ?? [] })),
    ...history.deliveries.map(
      (delivery): TimelineEntry => ({ kind: 'delivery', at: deliveryMoment(delivery), delivery, event: eventsByOutboxId.get(delivery.outboxId) ?? null }),
    ),
  ];
  return entries.sort((a, b) => a.at.getTime() - b.at.getTime() || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || entryId(a) - entryId(b));
}
