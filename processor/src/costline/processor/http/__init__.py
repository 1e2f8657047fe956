"""The HTTP and gRPC edge: the server, the API routes and their access rules, the OTLP endpoints."""
