"""galsr: fast galaxy photometry + kinematics maps by super-resolving a coarse simulation with iSRCNN."""
__version__ = "0.1.0"
