"""ERPNext's hooks module, as Frappe imports it on every request (frappe.get_hooks). A build with
``STANDIN_BROKEN=http500`` is a release whose app fails to import, the commonest way a real
release answers 500 to everything: this module raises, as a hooks module importing a name that
moved would."""

import os

if os.environ.get("STANDIN_BROKEN") == "http500":
    raise ImportError(
        "cannot import name 'get_company_currency' from 'erpnext.setup.utils' "
        "(broken build, STANDIN_BROKEN=http500)"
    )

app_name = "erpnext"
