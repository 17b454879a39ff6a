"""Everything that differs between Blender 4.2, 4.5 and 5.0 lives here (and only here).

* Actions: 4.2/4.3 keep F-curves and groups on the Action (``action.fcurves``). 4.4+ has
  layered ("slotted") actions: F-curves live in a channelbag of a keyframe strip for one slot
  (``action.layers[0].strips[0].channelbag(slot)``), and the ID's ``animation_data.action_slot``
  picks the slot; 5.0 removed ``Action.fcurves`` altogether.
* ``ActionChannelbagFCurves.new`` gained ``group_name`` only in 5.0, so groups are assigned
  with ``fcurve.group = group``, which works everywhere.
"""
import bpy

VERSION = tuple(bpy.app.version)
LAYERED_ACTIONS = VERSION >= (4, 4, 0)


class Channels:
    """Where F-curves and groups of one animated ID go: a channelbag (4.4+) or the Action."""

    def __init__(self, action, slot, container):
        self.action, self.slot, self.container = action, slot, container
        self._groups = {}

    def group(self, name):
        g = self._groups.get(name)
        if g is None:
            g = self.container.groups.get(name) or self.container.groups.new(name)
            self._groups[name] = g
        return g

    def new_fcurve(self, data_path, index, group_name):
        fc = self.container.fcurves.new(data_path, index=index)
        if group_name:
            fc.group = self.group(group_name)
        return fc


def new_action_for(id_data, name):
    """Create a new Action named ``name`` animating ``id_data`` and assign it; return Channels.

    The Action is always new (Blender appends .001 etc. on a clash), never an existing one.
    """
    action = bpy.data.actions.new(name)
    ad = id_data.animation_data or id_data.animation_data_create()
    if LAYERED_ACTIONS:
        id_type = getattr(id_data, "id_type", "OBJECT")
        slot = action.slots.new(id_type=id_type, name=id_data.name)
        layer = action.layers.new("Layer")
        strip = layer.strips.new(type="KEYFRAME")
        container = strip.channelbag(slot, ensure=True)
        ad.action = action
        ad.action_slot = slot
        return Channels(action, slot, container)
    ad.action = action
    return Channels(action, None, action)


def iter_fcurves(action, slot=None):
    """All F-curves of an Action (for one slot when given), on every supported version."""
    if LAYERED_ACTIONS:
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    if slot is None or bag.slot_handle == slot.handle:
                        yield from bag.fcurves
    else:
        yield from action.fcurves


def iter_groups(action, slot=None):
    if LAYERED_ACTIONS:
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    if slot is None or bag.slot_handle == slot.handle:
                        yield from bag.groups
    else:
        yield from action.groups


def assigned_slot(id_data):
    ad = id_data.animation_data
    return getattr(ad, "action_slot", None) if ad else None


def register_cli_command(name, execute):
    """``blender -c name ...`` (4.2+); returns a handle for unregister_cli_command, or None."""
    fn = getattr(bpy.utils, "register_cli_command", None)
    return fn(name, execute) if fn else None


def unregister_cli_command(handle):
    if handle is not None:
        bpy.utils.unregister_cli_command(handle)


def set_smooth(mesh):
    n = len(mesh.polygons)
    mesh.polygons.foreach_set("use_smooth", [True] * n)


def image_texture_emission_material(name, image, frames, offset):
    """A material showing ``image`` (a movie) unlit: Workbench 'Texture' colour and EEVEE/Cycles."""
    mat = bpy.data.materials.new(name)
    if VERSION < (5, 0, 0):
        mat.use_nodes = True  # always on (and deprecated) in 5.0
    nt = mat.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    iu = tex.image_user
    iu.frame_duration = int(frames)
    iu.frame_start = 1
    iu.frame_offset = int(offset)
    iu.use_auto_refresh = True
    emit = nt.nodes.new("ShaderNodeEmission")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(tex.outputs["Color"], emit.inputs["Color"])
    nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    nt.nodes.active = tex
    return mat
