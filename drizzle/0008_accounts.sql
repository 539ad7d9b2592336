CREATE TABLE "accounts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"name" text NOT NULL,
	"external_id" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"credentials_kind" text NOT NULL,
	"credentials_last4" text NOT NULL,
	"credentials_key_id" text NOT NULL,
	"credentials_ciphertext" text NOT NULL,
	"webhook_secrets_key_id" text,
	"webhook_secrets_ciphertext" text,
	"last_checked_at" timestamp with time zone,
	"broken_since" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_provider_name_uq" ON "accounts" USING btree ("provider","name");--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_provider_external_id_uq" ON "accounts" USING btree ("provider","external_id");