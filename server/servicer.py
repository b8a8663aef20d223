"""The FortnoxService servicer, assembled from the handler groups in ``server/rpc_*.py``.

A group is a class whose methods named after RPCs of the service serve them: they translate
between protobuf messages and the core's use cases, and raise domain errors, which
``server.errors.ErrorInterceptor`` maps. The servicer walks the service's descriptor and takes
each RPC from the one group that defines it, so a new RPC touches the proto, one group and the
wiring; an RPC no group serves fails the start instead of answering ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["FortnoxService"]


def assemble(*groups: object) -> pb_grpc.FortnoxServiceServicer:
    """The servicer serving each RPC by the method of the one group that defines it.

    Raises ``TypeError`` when an RPC is served by no group or by two, or when a group defines a
    method named like an RPC (capitalised) that the service does not have.
    """
    owners = {rpc: [g for g in groups if rpc in _rpc_names(g)] for rpc in SERVICE.methods_by_name}
    problems = [f"{rpc} is served by {len(found)} groups {[type(g).__name__ for g in found]}"
                for rpc, found in owners.items() if len(found) != 1]
    strays = set().union(*map(_rpc_names, groups)) - owners.keys()
    problems += [f"{name} is no RPC of the service" for name in sorted(strays)]
    if problems:
        raise TypeError(f"{SERVICE.full_name}: {'; '.join(problems)}")
    # A subclass of the generated base whose methods are the groups' bound methods.
    handlers = {rpc: staticmethod(getattr(found[0], rpc)) for rpc, found in owners.items()}
    servicer: pb_grpc.FortnoxServiceServicer = type(
        "FortnoxServicer", (pb_grpc.FortnoxServiceServicer,), handlers)()
    return servicer


def _rpc_names(group: object) -> set[str]:
    """The group's methods named like RPCs: the capitalised ones."""
    return {name for name in dir(type(group)) if name[:1].isupper()}
