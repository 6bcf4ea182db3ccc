"""Small helpers shared by every part: data directory, logging, listen addresses.

Parts import only from here and from each other's public modules (their ``__init__``).
"""
