"""One router per feature; app.web.app.ROUTERS lists them."""
