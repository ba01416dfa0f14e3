# The worker image: the project and its dependencies, nothing else. Triton runs in its own
# container (compose.yaml); this image only speaks to it over gRPC.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY router router
COPY db db
COPY workers workers
COPY api api
COPY migrations migrations
RUN pip install --no-cache-dir '.[ops,api]' && useradd --create-home messplus
USER messplus
CMD ["messplus", "--help"]
