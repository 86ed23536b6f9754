"""The clients of ``serve_load.py``: threads sending one row-format predict
request per text over ``urllib`` (a new connection each). Standard library
only, so ``serve_load.py --client-process`` runs them in a process of their
own: JSON ``{"url", "texts", "clients"}`` on stdin, ``{"results",
"seconds", "errors"}`` on stdout."""

import collections
import json
import sys
import threading
import time
import urllib.error
import urllib.request

_LOCK = threading.Lock()


def predict(url, text, errors):
    """``(latency_ms, output or None)`` of one row-format request; a failed
    one's error (class and first line) is counted in ``errors``."""
    body = json.dumps({"instances": [text]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            prediction = json.loads(response.read())["predictions"][0]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
        with _LOCK:
            errors[f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:120]] += 1
        return (time.perf_counter() - started) * 1000.0, None
    latency = (time.perf_counter() - started) * 1000.0
    return latency, prediction["outputs"] if isinstance(prediction, dict) else prediction


def run_load(url, texts, clients, errors):
    results = [None] * len(texts)

    def client(worker):
        for i in range(worker, len(texts), clients):
            results[i] = predict(url, texts[i], errors)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def main():
    request = json.load(sys.stdin)
    errors = collections.Counter()
    results, seconds = run_load(request["url"], request["texts"], request["clients"], errors)
    json.dump({"results": results, "seconds": seconds, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
