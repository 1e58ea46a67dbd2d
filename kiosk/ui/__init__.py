"""The touchscreen: patient screens for every engine state and a staff mode (pygame-ce).

Split so that everything but drawing is plain Python, testable without a display:
  theme      colours (WCAG contrast), sizes from the panel's DPI (12 mm touch targets)
  i18n       gettext catalogues (locale/*/LC_MESSAGES/kiosk.po), each language named in itself
  widgets    button, auto-fitting label, keypad, signature pad, modal: layout + draw
  model      the UI state: engine events in, touches in, UiInputs out (no pygame)
  screens    one builder per screen: the model → a list of widgets
  app        PygameUi: the engine's UiPort and the event → update → draw loop (pygame here)
  audio      pre-rendered WAV prompts through pygame's mixer (silent when absent)
  robot      a scripted patient/staff member who taps widgets (tests, `kiosk demo --ui`)
"""
