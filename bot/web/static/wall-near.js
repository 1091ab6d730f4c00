// 圆梦墙 "near me": the phone's location, rounded to about a kilometre, goes to /wall once to find the nearest
// town; the page keeps nothing of it. Without JavaScript or without permission the town list still works.
(function () {
  var button = document.getElementById("near-me");
  var status = document.getElementById("near-status");
  if (!button || !navigator.geolocation) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = "正在获取您的位置……";
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        var lat = pos.coords.latitude.toFixed(2), lon = pos.coords.longitude.toFixed(2);
        window.location.href = "/wall?lat=" + encodeURIComponent(lat) + "&lon=" + encodeURIComponent(lon);
      },
      function () {
        status.textContent = "没能获取位置，请在上面选择您所在的镇街。";
      },
      { enableHighAccuracy: false, timeout: 10000, maximumAge: 600000 }
    );
  });
})();
