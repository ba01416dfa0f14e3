"""The API's routes, one module per resource, as OpenAI's reference groups them."""
