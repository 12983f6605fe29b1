"""What `dba-ref conformance check` allows each quantity of the golden cases, relative to its rounding scale.

For every float output of every golden case, the rule of spec §7.1 worked out
for that key (``dba_ref.conformance.output_rounding``: its rounding scale and
its tolerance) gives ``tolerance / scale``; this prints the range of it over
the keys of each quantity, by the case's dtype (docs/verification.md, §2).
Run: python docs/scripts/conformance_allowances.py
"""
import numpy as np

from dba_ref.conformance import QUANTITIES, load_golden, output_rounding, quantity_of

ranges = {}
for case in load_golden().values():
    for key in case:
        quantity = quantity_of(key)
        if quantity is None or quantity in ("indices", "removed"):
            continue
        scale, tolerance = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in output_rounding(case, key)))
        usable = (scale > 0) & np.isfinite(scale) & np.isfinite(tolerance)
        if usable.any():
            allowed = tolerance[usable] / scale[usable]
            low, high = ranges.get((quantity, str(case["dtype"])), (np.inf, 0.0))
            ranges[quantity, str(case["dtype"])] = (min(low, allowed.min()), max(high, allowed.max()))
print(f"{'quantity':<11} {'dtype':<8} allowed / rounding scale")
for quantity in QUANTITIES:
    for dtype in ("float64", "float32"):
        if (quantity, dtype) in ranges:
            low, high = ranges[quantity, dtype]
            print(f"{quantity:<11} {dtype:<8} {low:.2g} to {high:.2g}")
