"""The kernel below every layer: errors a user can act on (:mod:`manip.core.errors`), typed configs
(:mod:`manip.core.config`, pydantic + YAML, imported only by who needs them), feature specs
(:mod:`manip.core.specs`), progress bars (:mod:`manip.core.progress`), lazy name registries
(:mod:`manip.core.registry`) and provenance (:mod:`manip.core.provenance`).

Importing this package imports nothing heavy: the light client and the ROS node use errors and specs.
"""
