"""serial: the whole model on one GPU. The baseline every speed-up is measured against."""
from .base import Strategy


class Serial(Strategy):
    key = "serial"
    splits = "nothing"


STRATEGY = Serial()
