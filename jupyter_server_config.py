# `make lab` starts JupyterLab with this file: every notebook is saved without outputs, execution counts or
# widget state (modaverse_lite.tutorial.strip_on_save), so the committed notebooks stay stripped.
c = get_config()  # noqa: F821 (Jupyter defines get_config when it reads this file)
c.ContentsManager.pre_save_hook = "modaverse_lite.tutorial.strip_on_save"
