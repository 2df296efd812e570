"""The yardstick: the 20-line durable gateway a user would write (`python bench/reference_gateway.py TOPIC PORT`)."""
import contextlib  # ~20 lines on purpose: the point is how little it does
import hashlib
import hmac
import os
import sys

import orjson
import uvicorn
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

KEY, SECRET, TOPIC = os.environ["TIKTOK_APP_KEY"].encode(), os.environ["TIKTOK_APP_SECRET"].encode(), sys.argv[1]


async def webhook(request):  # type: ignore[no-untyped-def]  # a user's script, not product code
    body = await request.body()
    expected = hmac.new(SECRET, KEY + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("authorization", "")):
        return Response(status_code=401)
    doc = orjson.loads(body)
    await producer.send_and_wait(TOPIC, body, key=f"{doc['shop_id']}:{doc['data']['order_id']}".encode())
    return Response(status_code=200)


@contextlib.asynccontextmanager
async def lifespan(_):  # type: ignore[no-untyped-def]
    global producer
    producer = AIOKafkaProducer(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                                acks="all", enable_idempotence=True, linger_ms=1)
    await producer.start()
    yield
    await producer.stop()

app = Starlette(routes=[Route("/webhooks/tiktok", webhook, methods=["POST"])], lifespan=lifespan)
if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", workers=1)
