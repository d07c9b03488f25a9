"""moto_server, answering one request at a time.

    python3 tests/moto_serial.py -H 127.0.0.1 -p PORT

moto 5 is not safe under concurrent requests: its TransactWriteItems
deep-copies the whole table (for rollback) with no lock, so a write on
another thread makes the copy fail ("dictionary changed size during
iteration", an HTML 500), and its conditional writes check and write in two
steps another thread can interleave. DynamoDB itself makes each conditional
write and each transaction atomic, which is what the race tests and the load
run rely on. So this serves moto's own application (the same one
`moto_server` runs) behind a lock: connections are accepted concurrently and
answered in turn. The GIL already lets only one request run Python at a
time, so little is lost.

The integration tests embed this file (tests/src/lib.rs) and scripts/load
runs it; the SMS and email moto records stay at /moto-api/data.json.
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def copy_each_table_once_per_transaction() -> None:
    """moto's TransactWriteItems takes its rollback backup by deep-copying
    the table once for every item of the transaction, before it writes any:
    N identical copies of one unchanged table, so a 6-item transaction costs
    six copies of everything stored (about 50 ms per 1,000 items here). One
    copy per table is the same backup. Other deep copies (update_item's of
    one item) are left alone. Applied only while requests are serialised
    (the module-level swap is not thread-safe) and only when moto has the
    shape this was written against; otherwise moto runs as it is, slower.
    """
    import copy

    try:
        from moto.dynamodb import models
        from moto.dynamodb.models.table import Table
    except ImportError:
        return
    backend = getattr(models, "DynamoDBBackend", None)
    original = getattr(backend, "transact_write_items", None)
    if original is None or getattr(models, "copy", None) is not copy:
        return

    class TableCopiedOnce:
        def __init__(self) -> None:
            self.backups: dict[int, Table] = {}

        def deepcopy(self, x, memo=None):
            if not isinstance(x, Table):
                return copy.deepcopy(x, memo)
            if id(x) not in self.backups:
                self.backups[id(x)] = copy.deepcopy(x, memo)
            return self.backups[id(x)]

        def __getattr__(self, name):
            return getattr(copy, name)

    def transact_write_items(self, transact_items):
        models.copy = TableCopiedOnce()
        try:
            return original(self, transact_items)
        finally:
            models.copy = copy

    backend.transact_write_items = transact_write_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    # As moto_server does: moto builds some URLs from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    copy_each_table_once_per_transaction()
    inner = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            body = inner(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    run_simple(args.host, args.port, serial, threaded=True)


if __name__ == "__main__":
    main()
