CREATE SEQUENCE "public"."bank_fetch_fence" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "bank_tokens" (
	"secret_id" text PRIMARY KEY NOT NULL,
	"access" text,
	"access_issued_at" timestamp with time zone,
	"access_expires_at" timestamp with time zone,
	"refresh" text,
	"refresh_expires_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bank_connections" (
	"id" text PRIMARY KEY NOT NULL,
	"reference" text NOT NULL,
	"institution_id" text NOT NULL,
	"redirect_url" text NOT NULL,
	"max_historical_days" integer NOT NULL,
	"access_valid_for_days" integer NOT NULL,
	"status" text NOT NULL,
	"agreement_id" text,
	"requisition_id" text,
	"requisition_status" text,
	"link" text,
	"creating_owner" text,
	"creating_until" timestamp with time zone,
	"consent_accepted_at" timestamp with time zone,
	"consent_expires_at" timestamp with time zone,
	"expiry_warned_days" double precision,
	"broken_at" timestamp with time zone,
	"broken_reason" text,
	"next_check_at" timestamp with time zone,
	"check_attempts" integer DEFAULT 0 NOT NULL,
	"lease_owner" text,
	"lease_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bank_accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"connection_id" text NOT NULL,
	"external_id" text NOT NULL,
	"iban" text,
	"owner_name" text,
	"status" text NOT NULL,
	"last_synced_at" timestamp with time zone,
	"next_sync_at" timestamp with time zone,
	"last_booked_date" date,
	"last_error" text,
	"import_fence" bigint,
	"lease_owner" text,
	"lease_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bank_call_budgets" (
	"account_id" text NOT NULL,
	"scope" text NOT NULL,
	"day" date NOT NULL,
	"calls" integer DEFAULT 0 NOT NULL,
	"paused_until" timestamp with time zone,
	CONSTRAINT "bank_call_budgets_account_id_scope_pk" PRIMARY KEY("account_id","scope")
);
--> statement-breakpoint
CREATE TABLE "bank_transactions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"connection_id" text NOT NULL,
	"status" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"transaction_id" text,
	"internal_transaction_id" text,
	"booking_date" date,
	"value_date" date,
	"amount_minor" bigint NOT NULL,
	"currency" text NOT NULL,
	"counterparty" text,
	"remittance" text,
	"pending_of" text,
	"missing_since" timestamp with time zone,
	"raw" text,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "bank_connections_live_reference_uq" ON "bank_connections" USING btree ("reference") WHERE "bank_connections"."status" not in ('expired', 'rejected', 'deleted', 'abandoned');--> statement-breakpoint
CREATE INDEX "bank_connections_reference_idx" ON "bank_connections" USING btree ("reference","created_at");--> statement-breakpoint
CREATE INDEX "bank_connections_next_check_idx" ON "bank_connections" USING btree ("next_check_at") WHERE "bank_connections"."next_check_at" is not null;--> statement-breakpoint
CREATE INDEX "bank_connections_status_idx" ON "bank_connections" USING btree ("status","id");--> statement-breakpoint
CREATE UNIQUE INDEX "bank_accounts_connection_external_uq" ON "bank_accounts" USING btree ("connection_id","external_id");--> statement-breakpoint
CREATE INDEX "bank_accounts_next_sync_idx" ON "bank_accounts" USING btree ("next_sync_at") WHERE "bank_accounts"."next_sync_at" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "bank_transactions_account_key_uq" ON "bank_transactions" USING btree ("account_id","dedupe_key");--> statement-breakpoint
CREATE UNIQUE INDEX "bank_transactions_account_internal_uq" ON "bank_transactions" USING btree ("account_id","internal_transaction_id") WHERE "bank_transactions"."internal_transaction_id" is not null;--> statement-breakpoint
CREATE INDEX "bank_transactions_pending_idx" ON "bank_transactions" USING btree ("account_id") WHERE "bank_transactions"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "bank_transactions_connection_idx" ON "bank_transactions" USING btree ("connection_id","id");