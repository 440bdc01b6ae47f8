"""dropscore's local stack (``make demo``): moto for S3/SQS/EventBridge, a sample model, the
watcher, a local job scheduler and the UI on one machine. Nothing here runs in AWS."""
