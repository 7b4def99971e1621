-- The W3C trace context (`traceparent`) of the code that enqueued a job, so
-- that the job's run continues that trace (src/telemetry/propagation.rs).
-- NULL with traces off, for jobs enqueued outside any span (recurring runs),
-- and for rows older builds write. Expand-only: older builds never read it.
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
