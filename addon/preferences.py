"""Add-on preferences: device, the user's SMPL file, the default smoothing preset, the estimator
and its per-frame refinement, and whether the subject is followed on a crop."""
from types import SimpleNamespace

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

DEVICE_ITEMS = (("auto", "Auto", "GPU when onnxruntime finds one, else CPU"),
                ("gpu", "GPU", "Run the networks on the GPU (CUDA)"),
                ("cpu", "CPU", "Run the networks on the CPU"))
SMOOTHING_ITEMS = (("none", "None", "Raw per-frame estimates"),
                   ("light", "Light", "Remove jitter, keep every nuance"),
                   ("animation", "Animation", "Smooth curves, easy to edit"),
                   ("analysis", "Analysis", "Keep fast motion (pitching) precise"))
ESTIMATOR_ITEMS = (("auto", "Auto", "The learned temporal model when its weights are installed, else the baseline"),
                   ("temporal", "Learned (temporal)", "The learned temporal model (part-based, uncertainty-aware)"),
                   ("baseline", "Baseline (IK)", "Analytic inverse kinematics on the detector's 3D landmarks"))
DEFAULTS = SimpleNamespace(device="auto", smpl_path="", smoothing="light", estimator="auto", refine=True,
                           follow=True)


class MOCAP_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto",
                         description="Where the engine runs its networks")
    smpl_path: StringProperty(name="SMPL model file", subtype="FILE_PATH", default="",
                              description="Your own SMPL_NEUTRAL .pkl/.npz; empty uses the open body "
                                          "that ships with the extension")
    smoothing: EnumProperty(name="Smoothing", items=SMOOTHING_ITEMS, default="light",
                            description="Default smoothing preset for new imports")
    estimator: EnumProperty(name="Estimator", items=ESTIMATOR_ITEMS, default="auto",
                            description="Which model turns the detected keypoints into motion")
    refine: BoolProperty(name="Per-frame refinement", default=True,
                         description="Learned estimator: refine each frame with the D2A-HMR network on top of "
                                     "the temporal model (also gives a per-joint confidence); off is a little "
                                     "faster")
    follow: BoolProperty(name="Follow the subject", default=True,
                         description="Find everyone on every 6th frame and follow the chosen person on a "
                                     "crop around them: faster, and it keeps to that person where people "
                                     "overlap. Off: detect and track everyone on every frame")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "device")
        col.prop(self, "smpl_path")
        col.prop(self, "smoothing")
        col.prop(self, "estimator")
        row = col.row()
        row.active = self.estimator != "baseline"
        row.prop(self, "refine")
        col.prop(self, "follow")


def get_prefs(context=None):
    """The preferences, or their defaults when the add-on is registered without being enabled
    through the Preferences (tests, ``blender -P`` scripts)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None and addon.preferences is not None else DEFAULTS
