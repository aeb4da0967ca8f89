"""zhifa_batch_messages: how many messages each batch worker of a BatchCollector was handed."""
from kombu.message import Message
from prometheus_client import REGISTRY

from services.kernel.messaging import BatchCollector


class Container:
    service_name = "svc_batch_metrics"

    def __init__(self):
        self.spawned = []

    def spawn_managed_thread(self, fn, identifier=None):
        self.spawned.append(identifier)  # the flush timer and the worker hand-over: not run here


class Collector(BatchCollector):
    method_name = "handle_test"

    def __init__(self, batch_max):
        self.container, self.consumer_options = Container(), {}
        self.setup_batches(batch_max)


class Channel:
    connection = object()


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, {"service": "svc_batch_metrics", "entrypoint": "handle_test", **labels})


def test_each_batch_handed_to_a_worker_is_observed_with_its_size():
    before_count = sample("zhifa_batch_messages_count") or 0
    before_sum = sample("zhifa_batch_messages_sum") or 0
    before_one = sample("zhifa_batch_messages_bucket", le="1.0") or 0
    before_five = sample("zhifa_batch_messages_bucket", le="5.0") or 0
    c, ch = Collector(batch_max=5), Channel()
    for tag in range(1, 8):  # 7 messages: a full batch of 5 goes out, 2 wait in the buffer
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert sample("zhifa_batch_messages_count") - before_count == 1
    assert sample("zhifa_batch_messages_sum") - before_sum == 5
    c._inflight = 0  # the worker finished: the rest goes out as a batch of 2
    c._flush()
    assert sample("zhifa_batch_messages_count") - before_count == 2
    assert sample("zhifa_batch_messages_sum") - before_sum == 7
    assert sample("zhifa_batch_messages_bucket", le="1.0") - before_one == 0
    assert sample("zhifa_batch_messages_bucket", le="5.0") - before_five == 2


def test_nothing_is_observed_while_every_worker_is_busy():
    c, ch = Collector(batch_max=2), Channel()
    c._inflight = c.batch_workers
    before = sample("zhifa_batch_messages_count") or 0
    for tag in range(1, 5):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert (sample("zhifa_batch_messages_count") or 0) == before
