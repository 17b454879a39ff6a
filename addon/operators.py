"""Operators (thin): Import Motion (.npz) and Import Video (modal, engine in a thread).

``scene.build_scene`` (and with it the engine's numpy/scipy modules) is imported on first use, so enabling
the add-on stays quick.
"""
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import jobs
from .preferences import SMOOTHING_ITEMS, get_prefs

VIDEO_EXTENSIONS = "*.mp4;*.mov;*.m4v;*.avi;*.mkv;*.webm;*.mpg;*.mpeg;*.wmv"


def _report_import(op, result, what):
    op.report({"INFO"}, f"{what}: {result.armature.name}, {result.keyed_frames} keyed frames")


class MOCAP_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a Motion file (.npz) as an SMPL-24 armature with a skinned body"""
    bl_idname = "mocap.import_motion"
    bl_label = "Import Motion (.npz)"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    with_mesh: BoolProperty(name="Body Mesh", default=True, description="Add the skinned body mesh")
    with_video: BoolProperty(name="Video Reference", default=True,
                             description="Add the source video behind a matching camera when the file exists")

    def execute(self, context):
        from engine.motion import load_motion
        from .scene import build_scene
        try:
            motion = load_motion(self.filepath)
            body = build_scene.load_body(get_prefs(context).smpl_path or None)
            video = None
            src = (motion.source or {}).get("video")
            if self.with_video and src and Path(src).is_file():
                video = src
            stem = Path(self.filepath).stem
            stem = stem[: -len(".motion")] if stem.endswith(".motion") else stem
            result = build_scene.import_motion(motion, body, context.scene, name=stem, video_path=video,
                                               with_mesh=self.with_mesh, with_camera=video is not None,
                                               motion_path=self.filepath)
        except Exception as exc:  # one report line; the Transaction has put the scene back
            self.report({"ERROR"}, jobs.error_message(exc))
            return {"CANCELLED"}
        _report_import(self, result, "Imported motion")
        return {"FINISHED"}


class MOCAP_OT_import_video(bpy.types.Operator, ImportHelper):
    """Estimate the body motion in a video and import it as an animated armature over the video"""
    bl_idname = "mocap.import_video"
    bl_label = "Import Video"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default=VIDEO_EXTENSIONS, options={"HIDDEN"})
    smoothing: EnumProperty(name="Smoothing", items=(("DEFAULT", "Preferences", "Use the preference"),)
                            + SMOOTHING_ITEMS, default="DEFAULT")
    with_mesh: BoolProperty(name="Body Mesh", default=True)
    save_motion: BoolProperty(name="Save Motion File", default=True,
                              description="Write the Motion file (.npz) next to the video")
    first_frame: IntProperty(name="First Frame", default=0, min=0,
                             description="First video frame to process (0-based)")
    last_frame: IntProperty(name="Last Frame", default=0, min=0,
                            description="Stop before this video frame; 0 processes to the end")
    focal: FloatProperty(name="Focal Length (px)", default=0.0, min=0.0,
                         description="The camera's focal length in pixels; 0 estimates it from the frame size")

    _job = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not context.window_manager.mocap_running

    def _options(self, context):
        prefs = get_prefs(context)
        frames = None
        if self.first_frame or self.last_frame:
            frames = (self.first_frame, self.last_frame or None)
        return jobs.pipeline_options(prefs, smoothing=None if self.smoothing == "DEFAULT" else self.smoothing,
                                     frame_range=frames, focal=self.focal or None)

    def _motion_path(self):
        from .scene import build_scene
        return Path(build_scene.video_abspath(self.filepath)).with_suffix(".motion.npz")

    def _check(self, context):
        """Everything that would stop the import, checked before the engine starts (the video
        opens, the frame range is inside it, options, body model, the Motion file's path).
        Returns (options, None) or (None, one message for the report)."""
        from engine.errors import EngineError
        from engine.outputs import check_output_file
        from engine.video.decode import open_video
        from .scene import build_scene
        try:
            video = build_scene.video_abspath(self.filepath)
            cap, info = open_video(video)
            cap.release()
            if self.last_frame and self.last_frame <= self.first_frame:
                raise EngineError(f"Last Frame ({self.last_frame}) must be after First Frame ({self.first_frame}); "
                                  "0 processes to the end")
            if info.frame_count and self.first_frame >= info.frame_count:
                raise EngineError(f"First Frame ({self.first_frame}) is past the end of the video "
                                  f"({info.frame_count} frames)")
            options = self._options(context).check()
            build_scene.load_body(get_prefs(context).smpl_path or None)
            if self.save_motion:
                check_output_file(self._motion_path(), inputs=[video], what="Motion file")
        except EngineError as exc:
            return None, str(exc)
        return options, None

    def execute(self, context):
        options, problem = self._check(context)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        from .scene import build_scene
        job = jobs.EngineJob(build_scene.video_abspath(self.filepath), options)
        if bpy.app.background or context.window is None:
            job.run_blocking()  # headless: nothing to keep responsive
            return self._finish(context, job)
        self._job = job.start()
        wm = context.window_manager
        wm.mocap_running = True
        wm.mocap_progress = 0.0
        wm.mocap_message = "starting"
        wm.progress_begin(0, 100)
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
            context.window_manager.mocap_message = "cancelling…"
            return {"RUNNING_MODAL"}
        if event.type != "TIMER" or event.timer is not self._timer:
            return {"PASS_THROUGH"}
        wm = context.window_manager
        if wm.mocap_cancel_requested:
            job.cancel()
        wm.mocap_progress = 100.0 * job.fraction
        wm.mocap_message = job.message
        wm.progress_update(int(100 * job.fraction))
        if context.workspace is not None:
            context.workspace.status_text_set(f"Mocap: {job.message} ({100 * job.fraction:.0f}%) — Esc to cancel")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not job.done:
            return {"PASS_THROUGH"}
        self._cleanup(context)
        return self._finish(context, job)

    def _cleanup(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        wm.mocap_running = False
        wm.mocap_cancel_requested = False
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def cancel(self, context):  # Blender closes the operator (e.g. file closed): stop the thread
        if self._job is not None:
            self._job.cancel()
        self._cleanup(context)

    def _finish(self, context, job):
        if job.cancelled:
            self.report({"WARNING"}, "Import Video cancelled; nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            self.report({"ERROR"}, jobs.error_message(job.error))
            return {"CANCELLED"}
        from .scene import build_scene
        try:
            motion = job.motion
            saved = None
            if self.save_motion:
                out = self._motion_path()
                try:
                    motion.save(out)
                    saved = out
                except OSError as exc:
                    self.report({"WARNING"}, f"could not save the Motion file: {exc}")
            body = build_scene.load_body(get_prefs(context).smpl_path or None)
            result = build_scene.import_motion(motion, body, context.scene, name=Path(self.filepath).stem,
                                               video_path=build_scene.video_abspath(self.filepath),
                                               with_mesh=self.with_mesh, with_camera=True, motion_path=saved)
        except Exception as exc:  # the Transaction has already put the scene back
            self.report({"ERROR"}, jobs.error_message(exc))
            return {"CANCELLED"}
        _report_import(self, result, "Imported video")
        return {"FINISHED"}


class MOCAP_OT_cancel(bpy.types.Operator):
    """Stop the running video import (same as Esc)"""
    bl_idname = "mocap.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return context.window_manager.mocap_running

    def execute(self, context):
        context.window_manager.mocap_cancel_requested = True
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(MOCAP_OT_import_motion.bl_idname, text="Motion (.npz)")
    self.layout.operator(MOCAP_OT_import_video.bl_idname, text="Video to Motion (mocap)")


CLASSES = (MOCAP_OT_import_motion, MOCAP_OT_import_video, MOCAP_OT_cancel)
