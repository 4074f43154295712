"""Imported by the warm start's forkserver only: Apprise with every plugin loaded and caseconf's
mail schema registered, once, so a run that sends is forked with them (about 0.15 s of CPU each)."""

from models.messaging import mail_plugin

mail_plugin.register()
