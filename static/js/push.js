/* "Turn on notifications on this device": registers /sw.js, subscribes with the server's
 * VAPID key and hands the subscription to the server; "turn off" undoes both.
 * Texts come translated from data-* attributes of #push-controls; the CSRF token from
 * <body hx-headers>, as htmx sends it. */
'use strict';

(function () {
  const box = document.getElementById('push-controls');
  if (!box) {
    return;
  }
  const onButton = document.getElementById('push-on');
  const offButton = document.getElementById('push-off');
  const status = document.getElementById('push-status');

  function say(key) {
    status.textContent = box.dataset[key] || key;
  }

  function csrfHeaders() {
    let token = '';
    try {
      token = JSON.parse(document.body.getAttribute('hx-headers') || '{}')['X-CSRFToken'] || '';
    } catch (error) {
      token = '';
    }
    return { 'Content-Type': 'application/json', 'X-CSRFToken': token };
  }

  function keyBytes(base64url) {
    const base64 = (base64url + '='.repeat((4 - (base64url.length % 4)) % 4))
      .replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(base64);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function show(subscribed) {
    onButton.hidden = subscribed;
    offButton.hidden = !subscribed;
    say(subscribed ? 'msgOn' : 'msgOff');
  }

  async function turnOn() {
    onButton.disabled = true;
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        say('msgDenied');
        return;
      }
      const keyResponse = await fetch(box.dataset.keyUrl, { credentials: 'same-origin' });
      const key = await keyResponse.json();
      if (!key.enabled) {
        say('msgUnavailable');
        return;
      }
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key.publicKey),
      });
      const response = await fetch(box.dataset.subscribeUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: csrfHeaders(),
        body: JSON.stringify(subscription.toJSON()),
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        await subscription.unsubscribe();
        status.textContent = problem.error || box.dataset.msgFailed;
        return;
      }
      window.location.reload();
    } catch (error) {
      say('msgFailed');
    } finally {
      onButton.disabled = false;
    }
  }

  async function turnOff() {
    offButton.disabled = true;
    try {
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.getSubscription();
      if (subscription) {
        await fetch(box.dataset.unsubscribeUrl, {
          method: 'POST',
          credentials: 'same-origin',
          headers: csrfHeaders(),
          body: JSON.stringify({ endpoint: subscription.endpoint }),
        });
        await subscription.unsubscribe();
      }
      window.location.reload();
    } catch (error) {
      say('msgFailed');
    } finally {
      offButton.disabled = false;
    }
  }

  async function start() {
    if (!('serviceWorker' in navigator) || !('PushManager' in window) ||
        !('Notification' in window)) {
      say('msgUnsupported');
      return;
    }
    try {
      const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.getSubscription();
      show(Boolean(subscription));
    } catch (error) {
      say('msgUnsupported');
      return;
    }
    onButton.addEventListener('click', turnOn);
    offButton.addEventListener('click', turnOff);
  }

  start();
}());
