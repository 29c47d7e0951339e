"""The HTTP routes, one APIRouter per concern; each route checks the caller and calls the Python API."""
