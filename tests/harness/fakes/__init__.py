"""In-memory fakes of the use cases' ports, held to the same contracts as the real adapters.

Each fake keeps its state in dictionaries and decides with the same core functions the stores
call (``decided_claim``, ``claimed``): the unit tests reach every branch of a use case in
milliseconds over them, and ``tests/adapters/stores/test_fakes_agree.py`` runs the same
operations on the fake export history and on each real store and compares the answers.
"""
