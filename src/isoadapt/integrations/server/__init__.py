"""`isoadapt serve`: an adapter behind the OpenAI embeddings endpoint (docs/serve.md).

protocol.py reads a request and writes a response or an error in the OpenAI shape; model.py holds the
base encoder and the adapter (one side rule: `Adapter.transform`); batching.py groups concurrent requests
into one encode; metrics.py counts them for Prometheus; app.py is the FastAPI app and its uvicorn runner;
ray_deployment.py runs the same app on Ray Serve."""
