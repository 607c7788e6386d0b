"""The light client: everything a robot-side process needs to run a served policy, and nothing heavy.

Every module here imports with numpy, msgpack and websockets alone (no torch, pydantic or YAML), on
Python >= 3.10, so the ROS node runs it inside a ROS Python:

- :mod:`.connection`: :class:`PolicyClient` / :class:`AsyncPolicyClient` (websocket, reconnect with backoff)
- :mod:`.protocol`, :mod:`.messages`: the msgpack wire format and its messages (docs/PROTOCOL.md)
- :mod:`.auth`: bearer tokens
- :mod:`.sources`: the :class:`ChunkSource` protocol and :class:`SourceMetadata`
- :mod:`.executor`, :mod:`.safety`, :mod:`.latency`: chunks -> one safe action per control tick
- :mod:`.loop`: observation history and the chunked control loop in simulated time
"""
