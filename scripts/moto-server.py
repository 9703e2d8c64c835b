"""moto's server, with DynamoDB requests isolated from each other as DynamoDB isolates them.

moto serves each request in its own thread and its DynamoDB backend takes no lock: two
concurrent conditional writes can both pass their condition, and a cancelled
TransactWriteItems restores a copy of the whole table taken before it started, wiping out
writes other requests made meanwhile. DynamoDB guarantees neither happens (conditional
writes and transactions are atomic and isolated). This launcher runs every DynamoDB backend
operation under one lock, then starts moto's own server unchanged:

    python scripts/moto-server.py -H 127.0.0.1 -p 5000
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_lock = threading.RLock()


def _isolated(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return wrapper


for _name, _method in list(vars(DynamoDBBackend).items()):
    if callable(_method) and not _name.startswith("_"):
        setattr(DynamoDBBackend, _name, _isolated(_method))

if __name__ == "__main__":
    main(sys.argv[1:])
