"""backup-operator: MongoDB and volume backups as Kubernetes Jobs, driven by custom resources.

The package is layered so a newcomer can find each concern in one place:

- ``api``        the typed API (pydantic) and the CRD generator
- ``conditions``, ``decisions``, ``jobs``, ``locking``: pure logic, data in, data out
- ``k8s``        the only module that talks to the Kubernetes API
- ``audit``      the only module that talks to MongoDB
- ``reconciler`` one level-based reconcile pass: read, ``decide()``, act
- ``handlers``   kopf registration, thin
- ``runner``     what runs inside each backup Job
"""

__version__ = "0.1.0"
