// Secrets are not in wrangler.jsonc (wrangler secret put / .dev.vars), so `wrangler types` cannot see them; declared here.
declare namespace Cloudflare {
  interface Env {
    RUNNER_WEBHOOK_SECRET?: string;
    RUNNER_TOKEN?: string;
    /**
     * The bearer sent to the models' Cog push targets (their API_TOKEN); unset: none. Never RUNNER_TOKEN, which leases
     * every model's work: a push target is a host we do not run.
     */
    PUSH_TARGET_TOKEN?: string;
    TOKEN_SIGNING_SECRET?: string;
    WEBHOOK_SIGNING_SECRET?: string;
    /** Signs the capability token in urls.stream (EventSource cannot send headers); falls back to TOKEN_SIGNING_SECRET. */
    STREAM_SIGNING_SECRET?: string;
    /** For models with backend "replicate". */
    REPLICATE_API_TOKEN?: string;
    REPLICATE_WEBHOOK_SECRET?: string;
    /** Bearer credential of GET /metrics. */
    OPERATOR_TOKEN?: string;
    /** The Cron Trigger's CloudWatch publisher (an IAM key allowed only cloudwatch:PutMetricData). */
    CLOUDWATCH_ACCESS_KEY_ID?: string;
    CLOUDWATCH_SECRET_ACCESS_KEY?: string;
  }
}
