#!/usr/bin/python3
"""A Flask app, with Flask's own router, served by Hypercorn over HTTP/1.1 and HTTP/2 (h2c prior knowledge).

usage: flask_app.py HOST:PORT

Routes: /ok; /admin and everything under it (/admin/<path>); anything else. Each answers 200 with the body
"route=<route> path=<path as the app sees it> query=<query string>", and logs one JSON line on stdout:
{"event": "request", "route": ..., "path": ..., "query": ..., "proto": "HTTP/1.1" or "HTTP/2",
"headers": [the names of the request's header fields, lower-case]}.
"""
import asyncio
import json
import sys

from asgiref.wsgi import WsgiToAsgi
from flask import Flask, request
from hypercorn.asyncio import serve
from hypercorn.config import Config

app = Flask(__name__)


def answer(route):
    query = request.query_string.decode("latin-1")
    print(json.dumps({"event": "request", "route": route, "path": request.path, "query": query,
                      "proto": request.environ.get("SERVER_PROTOCOL"),
                      "headers": sorted({k.lower() for k in request.headers.keys()})}), flush=True)
    return f"route={route} path={request.path} query={query}\n"


@app.route("/ok")
def ok():
    return answer("ok")


@app.route("/admin")
@app.route("/admin/<path:rest>")
def admin(rest=""):
    return answer("admin")


@app.route("/", defaults={"rest": ""})
@app.route("/<path:rest>")
def other(rest):
    return answer("other")


def main():
    config = Config()
    config.bind = [sys.argv[1]]
    config.accesslog = None
    print(json.dumps({"event": "listening", "bind": sys.argv[1]}), flush=True)
    asyncio.run(serve(WsgiToAsgi(app), config))


if __name__ == "__main__":
    main()
