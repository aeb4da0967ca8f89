"""Pure building blocks shared by every domain: findings, working days, domain errors.

Nothing here does I/O or reads the clock; the kernel and the services pass time in.
"""
