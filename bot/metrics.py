"""Prometheus metrics, read at scrape time from the engine, the outbox and the
supervised background tasks."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import Runtime
from bot.supervision import Supervisor
from storage.models import Delivery


class CrierCollector(Collector):
    def __init__(self, runtime: Runtime, supervisor: Supervisor | None = None) -> None:
        self.runtime = runtime
        self.supervisor = supervisor

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sent = CounterMetricFamily("crier_platform_requests", "Sends, updates and deletes done",
                                   labels=["platform"])
        failed = CounterMetricFamily("crier_platform_failures", "Deliveries given up",
                                     labels=["platform"])
        limited = CounterMetricFamily("crier_platform_rate_limited", "429 answers received",
                                      labels=["platform"])
        in_flight = GaugeMetricFamily("crier_platform_in_flight", "Requests in flight",
                                      labels=["platform"])
        rate = GaugeMetricFamily("crier_lane_rate_per_second",
                                 "Each lane's current pace (0: not paced; adaptive lanes move)",
                                 labels=["platform"])
        for name, lane in self.runtime.engine.lanes.items():
            rate.add_metric([name], lane.throttle.rate)
            sent.add_metric([name], lane.sent)
            failed.add_metric([name], lane.failed)
            limited.add_metric([name], lane.rate_limited)
            in_flight.add_metric([name], lane.in_flight)
        yield from (sent, failed, limited, in_flight, rate)
        outbox = GaugeMetricFamily("crier_outbox_rows", "Delivery rows by platform and status",
                                   labels=["platform", "status"])
        try:
            with self.runtime.db.session() as s:
                rows = s.execute(
                    select(col(Delivery.platform), col(Delivery.status), func.count())
                    .group_by(col(Delivery.platform), col(Delivery.status))
                ).tuples().all()
            for platform, status, n in rows:
                outbox.add_metric([platform, status], n)
            up = 1
        except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
            up = 0
        yield outbox
        db_up = GaugeMetricFamily("crier_database_up", "1 when the database answered")
        db_up.add_metric([], up)
        yield db_up
        if self.supervisor is not None:
            yield from self._tasks(self.supervisor)

    @staticmethod
    def _tasks(supervisor: Supervisor) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        restarts = CounterMetricFamily("crier_task_restarts", "Restarts of a background task "
                                       "after it crashed", labels=["task"])
        up = GaugeMetricFamily("crier_task_up", "1 while the background task runs",
                               labels=["task"])
        for name, state in supervisor.tasks.items():
            restarts.add_metric([name], state.restarts)
            up.add_metric([name], int(state.up))
        yield from (restarts, up)


def render_metrics(runtime: Runtime, supervisor: Supervisor | None = None) -> bytes:
    registry = CollectorRegistry()
    registry.register(CrierCollector(runtime, supervisor))
    return generate_latest(registry)
